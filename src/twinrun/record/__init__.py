"""Recording what a training run did: the run-directory contract and everything written into it.

Any trainer writes through here (twinrun's own, a user's loop, the Lightning callback). Nothing in this
package imports :mod:`twinrun.compare`, :mod:`twinrun.verify`,
:mod:`twinrun.testing` or :mod:`twinrun.trainers`.
"""
