"""Model references: where a reranker or first-stage model comes from (hub id, folder, installed package,
tiny test checkpoint), which exact weights it is (hub commit or folder hash), and random-weight twins."""
