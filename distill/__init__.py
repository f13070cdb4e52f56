"""Training: the tiny VAE and text encoder on the story world (and, later, the student's distillation).
Never imported by the serving path."""
