"""``python -m services.console``: run the operator console."""

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.http.server import configure_for, serve
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(ConsoleSettings)
    configure_for(settings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
