"""Retrieval: the first stage (dense or BM25, with its embedding cache and exact search) and the step that
turns its candidates into query-document pairs and reranker scores back into rankings."""
