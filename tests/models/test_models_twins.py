"""Twins: the offline XLM-R tokenizer a twin gets must be a real SentencePiece model whose token counts stay
close to WordPiece's (a twin's speed depends on its token counts)."""

from pathlib import Path

from runlocalai_bench.models.refs import package_folder

from support import MINILM


def test_twin_xlmr_tokenizer_is_sentencepiece_close_to_wordpiece(tiny_xlmr, fixture_pairs):
    from transformers import AutoTokenizer

    folder = Path(tiny_xlmr.location)
    assert (folder / "sentencepiece.bpe.model").is_file() and (folder / "tokenizer.json").is_file()
    xlmr = AutoTokenizer.from_pretrained(folder)
    wordpiece = AutoTokenizer.from_pretrained(package_folder(MINILM))
    texts = [d for _, d in fixture_pairs[::4]]
    ours = sum(len(xlmr.tokenize(t)) for t in texts)
    theirs = sum(len(wordpiece.tokenize(t)) for t in texts)
    assert 0.9 < ours / theirs < 1.2, (ours, theirs)  # a twin's speed depends on its token counts
    assert sum(t == xlmr.unk_token for text in texts for t in xlmr.tokenize(text)) == 0
    pair = xlmr("a query", "A Document.")["input_ids"]  # XLM-R layout: <s> q </s></s> d </s>
    assert pair[0] == xlmr.bos_token_id and pair[-1] == xlmr.eos_token_id and pair.count(xlmr.eos_token_id) == 3
