"""``hifialbedo serve``: a local web page to upload photos, watch the stages, turn the
reconstructed face in 3D and relight it.

``app`` (the Starlette app and its JSON API), ``jobs`` (upload checks, the bounded job queue
and its worker threads, which call the pipeline's ``reconstruct``), ``lights`` (the shipped
environment maps and the page's light format), ``server`` (uvicorn, the URL, the warnings);
``static/`` is the page (HTML, JS, CSS and three.js, vendored). Needs the ``web`` extra
(starlette, uvicorn, python-multipart); nothing here is imported by the rest of the package.
"""
