"""Running the benchmark: the runner executes the notebooks with papermill into a bundle (:mod:`.runner`),
each notebook calls one stage (:mod:`.stages`), and the runner pools their parts into tables (:mod:`.finalize`).

Vocabulary: a *run* is one ``runlocalai-bench run`` (one run_id, one bundle); an *execution* is one notebook
executed in its own kernel within a run (the ``runs`` table lists them); a *run file* is a TREC ranking.
"""
