"""The web application: server-rendered pages over the service layer."""
