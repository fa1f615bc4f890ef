"""``python -m services.goals``: run the goals service."""

from services.goals.app import create_app
from services.goals.settings import GoalsSettings
from shared.http.server import configure_for, serve
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(GoalsSettings)
    configure_for(settings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
