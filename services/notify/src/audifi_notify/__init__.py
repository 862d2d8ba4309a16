"""AudiFi notify service. E-mail: each message a Notification (pending, sent, failed), sent over
SMTP from templates.
"""
