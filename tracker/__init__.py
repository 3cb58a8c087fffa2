"""The `tracker` command: the run layer above the services.

It dispatches to each service's own entry point (`fetcher`, `service`, `alerter`, `demo`),
supervises them for the embedded run (`tracker up`), launches DynamoDB Local, and answers the
containers' healthchecks. Nothing below it imports it.
"""
