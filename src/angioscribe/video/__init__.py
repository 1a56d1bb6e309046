"""Study-level video model after DeepCORO-CLIP: whole cines aligned with report text, pooled over
the views of a study, read out per DeepCORO segment (docs/video.md).

One module per concept: `config` (the recipe), `frames` (which frames a cine contributes),
`features` (the frozen per-frame encoder and its disk cache), `encoders` (video encoders behind
one factory), `text` (report text encoders), `losses` (CLIP and SigLIP), `pooling` (views of a
study into one vector), `study_model` (the whole network), `data` (the CSV tables), `training`
(the task for the project's training loop), `zoo` (registry entries and loading), `predict`,
`evaluate`, `retrieval` and `figures`.
"""
