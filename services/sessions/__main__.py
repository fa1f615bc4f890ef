"""``python -m services.sessions``: run the sessions service."""

from services.sessions.app import create_app
from services.sessions.settings import SessionsSettings
from shared.http.server import configure_for, serve
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(SessionsSettings)
    configure_for(settings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
