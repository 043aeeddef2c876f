"""DTA physical camouflage (Suryanto et al., CVPR 2022): a black-box renderer, the DTN that
learns how it repaints a car, and the repeated texture projection the attack optimises."""
