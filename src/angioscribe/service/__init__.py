"""The cath-lab service: a DICOM listener, a persistent job queue, workers and result sending.

`angioscribe serve` (`service.serve`) receives studies over DICOM (`service.scp`), queues them
(`service.queue`), analyses them in worker processes (`service.worker`) and C-STOREs the
results back (`service.sender`); `service.config` holds its settings, `service.health` its
health endpoint.
"""
