"""The HTTP layer: thin routes over the services. ``create_app(platform)`` builds the FastAPI app."""
