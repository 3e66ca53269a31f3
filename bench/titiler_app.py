"""The TiTiler peer of bench.surfaces: titiler.core's COG tiler on FastAPI (run with uvicorn)."""

from fastapi import FastAPI
from titiler.core.factory import TilerFactory

app = FastAPI()
app.include_router(TilerFactory().router)
