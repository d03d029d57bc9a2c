"""The IOC dashboard and the tourist app: front-end sources (Vite) and their committed build in ``static/``.

The Python side only knows where the built bundle is and whether it is complete (:mod:`citydata.web.bundle`);
the routes that serve it are in :mod:`citydata.api.routes.web`."""
