"""fastText classifiers (language ID, quality, domain): training, metadata, batched scoring."""
