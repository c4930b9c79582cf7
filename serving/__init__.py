"""The serving API: a FastAPI app over the catalog database and object storage the pipeline writes."""
