"""tvdb_images: a local, optimized copy of the artwork of a TVDB catalog, kept by Dagster.

The processes that load this package (a Dagster run worker, the code server, the daemon, the API)
keep what they imported until they exit. Freezing it out of the garbage collector, here before the
project's modules load and again once the code location is built (`tvdb_images.definitions`), keeps
full collections from rescanning Dagster's and the project's import-time objects: 0.25 s less CPU
per launched run, mostly while it imports (docs/performance.md, section 3).
"""

import gc

gc.freeze()
