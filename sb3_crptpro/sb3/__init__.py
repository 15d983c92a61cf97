"""Stage 4, the SB3 side: use an artifact in Stable-Baselines3. :mod:`~sb3_crptpro.sb3.extractor` (frozen
``CRPTproExtractor``), :mod:`~sb3_crptpro.sb3.encode` (embedding mode), :mod:`~sb3_crptpro.sb3.reward` (prototype
kNN intrinsic reward), :mod:`~sb3_crptpro.sb3.sac` (augmenting SAC/TQC), :mod:`~sb3_crptpro.sb3.overlap` (updates
overlapped with env stepping), :mod:`~sb3_crptpro.sb3.policies` (LayerNorm-critic policies),
:mod:`~sb3_crptpro.sb3.buffers` (frame-lean replay buffer), :mod:`~sb3_crptpro.sb3.spaces` (pixel-space check),
:mod:`~sb3_crptpro.sb3.presets` (hyperparameters), :mod:`~sb3_crptpro.sb3.zoo` (rl-zoo3 glue)."""
