"""`tvdb-images demo`: a demo catalog, a local artwork origin, and a full sync through Dagster."""
