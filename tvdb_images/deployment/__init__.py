"""How Dagster is deployed, apart from what it runs (tvdb_images.defs): the instance storages the
dagster.yaml files select, and the embedded default instance config shipped with the package
(`dagster.yaml`, a link to the repository's top-level file).

These storages subclass Dagster's own and reach into its private internals, for measured gains
(docs/performance.md, section 3; docs/operations.md, "One run over a whole range").
`tvdb_images_tests/defs/test_deployment_internals.py` fails, naming what changed, when a Dagster upgrade
changes any internal they rely on.
"""
