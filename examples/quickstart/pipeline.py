"""The quickstart pipeline written in Python: the same pipeline as pipeline.yaml beside it
(a test checks that both give equal models). See docs/python-api.md.

    python examples/quickstart/pipeline.py      # prints the plan's explanation

A clinical-NLP pipeline: a language model is pre-trained on a public corpus (which may run
anywhere, so it can burst to the cheapest cloud), then fine-tuned on de-identified clinical
notes. The raw notes are personal data under the GDPR: they stay on our own sites in the EEA.
"""

from pathlib import Path

import placer

IMAGE = "ghcr.io/acme/nlp@sha256:4f6c0f0f1f8f1d1e9b0d7e3a5c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"

p = placer.pipeline("clinical-nlp")

notes = p.dataset("clinical-notes", uri="file:///data/clinical/notes/", size="400GB",
                  location="onprem:fra-dc1", tags={"residency": "EU", "classification": "pii"})
corpus = p.dataset("web-corpus", uri="s3://acme-public-corpora/web-2026/", size="2TB",
                   location="aws:us-east-1",
                   tags={"residency": "none", "classification": "public"})

tokenize = p.job("tokenize", command="python -m nlp.tokenize --in $PLACER_INPUTS "
                 "--out $PLACER_OUTPUTS", image=IMAGE, gpus=1,
                 gpu_types={"T4": "3h", "L4": "2h", "A100-40GB": "1h"},
                 inputs=[corpus], outputs={"shards": "600GB"}, spot=True)
pretrain = p.job("pretrain", command="python -m nlp.pretrain --steps 200000", image=IMAGE,
                 gpus=8, gpu_types={"A100-40GB": "6h", "A100-80GB": "5h30m", "H100": "3h"},
                 inputs=[tokenize.output("shards")], outputs={"checkpoint": "30GB"},
                 labels={"team": "nlp"}, spot=True)
deidentify = p.job("deidentify", command="python -m nlp.deidentify", image=IMAGE, gpus=1,
                   gpu_types={"V100": "2h", "A100-80GB": "1h"}, inputs=[notes],
                   outputs={"notes-clean": "120GB"},
                   removes_tags={"classification": ["pii"]})  # only where a policy approves it
finetune = p.job("finetune", command="python -m nlp.finetune --epochs 3", image=IMAGE, gpus=8,
                 gpu_types={"A100-80GB": "3h", "A100-40GB": "4h", "H100": "1h45m"},
                 inputs=[pretrain.output("checkpoint"), deidentify.output("notes-clean")],
                 outputs={"model": "30GB"}, labels={"team": "nlp"})
evaluate = p.job("evaluate", command="python -m nlp.evaluate", image=IMAGE, gpus=1,
                 gpu_types={"V100": "1h", "A100-80GB": "30m"},
                 inputs=[finetune.output("model"), deidentify.output("notes-clean")],
                 outputs={"report": "1GB"})

if __name__ == "__main__":
    here = Path(__file__).parent
    plan = placer.plan(p.build(), placer.load_inventory(here / "inventory.yaml"),
                       placer.load_policies(here.parents[1] / "policies"), deadline="12h")
    print(plan.explain())
