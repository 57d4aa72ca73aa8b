"""The generator's control tokens, and the escaping that keeps user text from ever producing one."""

from __future__ import annotations

import re
import unicodedata

# Hard prompt tokens (the generator's [goal] [topic] [item] steps, and the recommendation state).
GOAL_TOKEN = "[goal]"
TOPIC_TOKEN = "[topic]"
ITEM_TOKEN = "[item]"
REC_TOKEN = "[REC]"
# Speaker tokens that open each turn of a rendered dialogue.
SEEKER_TOKEN = "[seeker]"
RECOMMENDER_TOKEN = "[recommender]"
# A movie slot in a generated reply, filled with a title by the recommender.
MOVIE_TOKEN = "[MOVIE]"
# Opens each retrieved exemplar (a training reply after a similar context) in the generator's prompt.
EXEMPLAR_TOKEN = "[exemplar]"
SPECIAL_TOKENS = (GOAL_TOKEN, TOPIC_TOKEN, ITEM_TOKEN, REC_TOKEN, SEEKER_TOKEN, RECOMMENDER_TOKEN, MOVIE_TOKEN, EXEMPLAR_TOKEN)
# Tokens a tokenizer trained before they existed may lack (its generator then takes no exemplars).
OPTIONAL_TOKENS = (EXEMPLAR_TOKEN,)

_CONTROL_RE = re.compile(
    "|".join([re.escape(token) for token in SPECIAL_TOKENS + ("</s>", "<pad>", "<unk>", "<s>")] + [r"<extra_id_\d+>"]),
    re.IGNORECASE,
)
_BRACKETS = str.maketrans("[]<>", "()()")
_KEEP_CONTROL_CHARS = frozenset("\t\n\r")

def escape_control_tokens(text: str) -> str:
    """User text rewritten so that no part of it can tokenize to a control token.

    The rule: normalise to NFKC and drop control characters (so that "［REC］" or "[RE\\x01C]" cannot
    become "[REC]" inside the tokenizer's own normaliser), then, in every occurrence of a special
    token, ``</s>``, ``<pad>``, ``<unk>``, ``<s>`` or a sentinel ``<extra_id_N>``, in any case,
    replace the brackets by parentheses: "[REC]" → "(REC)", "</s>" → "(/s)". Removing brackets
    cannot create a new occurrence, so one pass suffices; other text is left as it is.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch in _KEEP_CONTROL_CHARS or unicodedata.category(ch) != "Cc")
    return _CONTROL_RE.sub(lambda match: match.group(0).translate(_BRACKETS), text)
