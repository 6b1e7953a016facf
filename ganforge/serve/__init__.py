"""The web playground: a page to play with a trained generator and watch a run train.

`create_app(run)` builds the FastAPI application; `ganforge serve RUN` runs it with uvicorn.
It depends on `ganforge.generator` (the inference pipeline) and `ganforge.rundir` (the run's
files); nothing else of ganforge's upper floors.
"""

from ganforge.serve.app import create_app

__all__ = ["create_app"]
