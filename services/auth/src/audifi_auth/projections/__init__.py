"""Auth's read models, fed from its own notification log."""
