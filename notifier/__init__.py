"""The delivery worker: sends each pending delivery of the outbox (`tracker deliver`)."""
