"""MTL: how task losses and task gradients are combined, and their conflict diagnostics."""
