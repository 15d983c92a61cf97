"""Stage 3, pretraining: fit encoder + projector + predictor + prototypes on the datasets of stage 2 and save an
artifact. :mod:`~sb3_crptpro.pretraining.pretrainer` (the update loop), :mod:`~sb3_crptpro.pretraining.losses`
(Proto-RL comparative and CRPTpro intrinsic losses), :mod:`~sb3_crptpro.pretraining.augment` (random shift),
:mod:`~sb3_crptpro.pretraining.diagnostics` (collapse and prototype usage), :mod:`~sb3_crptpro.pretraining.probe`
(linear state probes), :mod:`~sb3_crptpro.pretraining.pipeline` (collect + pretrain in one call)."""
