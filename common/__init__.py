"""Shared by every service: settings, domain models, DynamoDB schema and queries, window math."""
