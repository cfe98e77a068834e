from platform import Platform

level = [Platform(i * 10, 0, 8) for i in range(100)]
for _ in range(200):
    for p in level:
        p.x += 1
print("game ran", len(level), level[0].x)
