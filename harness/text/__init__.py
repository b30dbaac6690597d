"""Shared text pieces: spaCy tokenization with fastai-style rules, vocabulary, token cache, batches."""
