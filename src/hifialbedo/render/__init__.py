"""Rasterizer, unwrap (photo -> UV), re-projection (UV -> photo) and the differentiable renderer."""
