"""Delayed-label monitoring: join the prediction log with outcomes, measure each arm, judge A/B.

It depends on model/ (the contract) and on data libraries only; never on training or serving code.
"""
