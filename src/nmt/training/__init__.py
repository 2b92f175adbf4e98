"""Training: batches (``batching``), teacher forcing (``teacher_forcing``), losses
(``losses``), optimizers and schedules (``optim``), the epoch loop with validation, early
stopping and resumption (``loop``), and checkpoint files (``checkpoint``)."""
