"""Running the jobs as Prefect deployments, and the main job.

- ``prefect.yaml``: the deployments of the three jobs and the follow-rotation recipe to a
  process work pool, with blocks as references (never their data) and the event trigger.
- ``pin_blocks``: turns the block slugs of deployed parameters into block-document ids,
  so the UI's run forms show the saved blocks in their pickers.
- ``serve``: the same deployments served from one process, without a work pool.
- ``local``: a Prefect server, a PostHog emulator, blocks, pool, deployments and a worker
  on one machine with one command (``LocalStack``).
- ``demo``: the main job (``./run demo``): the three jobs end to end against the emulator.
"""
