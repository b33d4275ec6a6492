"""Prices: a price point and its charge, the genai-prices catalog, the list prices in force over time."""
