"""``python -m services.notifications``: run the notifications service."""

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.http.server import configure_for, serve
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(NotificationsSettings)
    configure_for(settings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
