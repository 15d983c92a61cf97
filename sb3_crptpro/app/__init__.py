"""Stage 5, applications: the ``sb3-crptpro`` command (:mod:`~sb3_crptpro.app.cli`), train / resume / evaluate
runners (:mod:`~sb3_crptpro.app.training`, :mod:`~sb3_crptpro.app.train_checkpoint`,
:mod:`~sb3_crptpro.app.evaluation`), the demo and its report (:mod:`~sb3_crptpro.app.demo`,
:mod:`~sb3_crptpro.app.report`, :mod:`~sb3_crptpro.app.render_demo`), ``inspect`` (:mod:`~sb3_crptpro.app.inspection`)
and progress output (:mod:`~sb3_crptpro.app.progress`)."""
