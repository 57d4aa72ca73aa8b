import numpy as np
import torch

from crs.text.encoder import TextEncoder, TunableTop, cached_encode, encode_hidden


def test_bundled_minilm_embeds_by_meaning(tmp_path):
    encoder = TextEncoder(max_tokens=32)
    texts = ["I love scary horror films", "Any frightening slasher movies?", "A sweet romantic comedy for date night"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # horror is nearer horror than romance
    cached = cached_encode(encoder, texts, tmp_path)
    np.testing.assert_allclose(cached, vectors, atol=1e-6)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_allclose(cached_encode(encoder, texts, tmp_path), vectors, atol=1e-6)  # read back


def test_tunable_top_reproduces_the_frozen_encoder_and_learns():
    encoder = TextEncoder(max_tokens=32)
    texts = ["Seeker: hi, any romantic comedy?", "Seeker: I want a scary movie tonight"]
    reference = encoder.encode(texts, truncate_left=True)
    top = TunableTop(encoder, 1).eval()
    states, masks = encode_hidden(encoder, texts, top.first_layer)
    hidden, mask = torch.as_tensor(states).float(), torch.as_tensor(masks).long()
    with torch.no_grad():
        np.testing.assert_allclose(top(hidden, mask).numpy(), reference, atol=1e-3)  # float16 states
    top.train()
    before = top(hidden, mask).detach()
    optimizer = torch.optim.SGD(top.parameters(), lr=0.5)
    out = top(hidden, mask)
    loss = out[0] @ out[1]  # push the two embeddings apart
    loss.backward()
    optimizer.step()
    assert not torch.allclose(before, top(hidden, mask).detach())
    assert encoder.model.encoder.layer[-1].attention.self.query.weight.grad is None  # the frozen encoder is untouched


def test_bf16_encoding_stays_next_to_fp32(tmp_path):
    import pytest

    from crs import precision as module

    texts = ["Seeker: I loved The Matrix and Heat, anything similar? Recommender: How about Ronin (1998)?",
             "Seeker: something funny for the kids tonight", "Seeker: not a horror movie please, I hated It (2017)"]
    exact = TextEncoder(max_tokens=64).encode(texts)
    fast = TextEncoder(max_tokens=64, precision="bf16")
    half = fast.encode(texts)
    assert half.dtype == np.float32 and (exact * half).sum(1).min() > 0.999
    cached_encode(fast, texts, tmp_path)
    cached_encode(TextEncoder(max_tokens=64), texts, tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # a bf16 cache never stands in for an fp32 one
    with pytest.raises(ValueError, match="precision"):
        TextEncoder(max_tokens=64, precision="fp8")
    module.set_inference_precision("bf16")
    try:
        assert TextEncoder(max_tokens=64).precision == "bf16"
        assert TextEncoder(max_tokens=64, precision="fp32").precision == "fp32"
    finally:
        module.set_inference_precision("fp32")
    with pytest.raises(ValueError, match="precision"):
        module.set_inference_precision("int8")
    assert module.set_inference_precision("auto") == ("bf16" if module.bf16_supported() else "fp32")
    module.set_inference_precision("fp32")
