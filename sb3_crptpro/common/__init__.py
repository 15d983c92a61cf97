"""Shared by every stage (imports nothing else of the package): :mod:`~sb3_crptpro.common.networks` (encoder,
projector, predictor, prototypes), :mod:`~sb3_crptpro.common.artifact` (the versioned ``.safetensors`` encoder
artifact), :mod:`~sb3_crptpro.common._gl` (headless GL set-up, run on ``import sb3_crptpro``),
:mod:`~sb3_crptpro.common.threads` (torch thread counts per kind of work) and :mod:`~sb3_crptpro.common.progress`
(progress bars that print plain lines when piped)."""
