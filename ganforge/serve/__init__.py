"""The web playground: a page to play with a trained generator and watch a run train.

`create_app(run)` builds the FastAPI application; `ganforge serve RUN` runs it with uvicorn.
It depends on `ganforge.sample` (the inference pipeline) and reads the run directory; nothing else.
"""

from ganforge.serve.app import create_app

__all__ = ["create_app"]
