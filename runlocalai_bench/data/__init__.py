"""Test collections and rankings: what a run reads (documents, queries, judgments) and the TREC run files it
writes. Depends on nothing else in the package."""
