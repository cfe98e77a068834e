"""A platform of a 2-D game: a user module that happens to share a stdlib name."""


class Platform:
    def __init__(self, x, y, w):
        self.x, self.y, self.w = x, y, w
