import sys
from crs.serve.pipeline import CRS
from crs.serve.chat import chat_turn
p = CRS.from_pretrained("checkpoints/default")
chats = [l.split(" || ") for l in open(sys.argv[1]).read().splitlines() if l.strip()]
for turns in chats:
    state = None
    for t in turns:
        r = chat_turn(p, t, state)
        state = r.state
        req = r.details.request if hasattr(r.details, "request") else None
        print("U:", t)
        print("B:", r.reply, "   [", "; ".join(c.label for c in (req.wanted if req else [])), "| not:", "; ".join(c.label for c in (req.unwanted if req else [])), "]")
    print()
