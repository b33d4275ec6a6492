"""Judgements on finished runs, each writing only its own file: gate, compare, backtest, claims."""
