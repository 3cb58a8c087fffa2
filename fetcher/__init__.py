"""The fetcher: every market of every enabled source, each tick, into DynamoDB."""
