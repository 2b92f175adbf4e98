"""Training: batches (``batching``), teacher forcing (``teacher_forcing``), losses
(``losses``), optimizers and schedules (``optim``), the epoch loop with validation, early
stopping and resumption (``loop``), checkpoint files (``checkpoint``), and data-parallel
processes under torchrun (``distributed``)."""
