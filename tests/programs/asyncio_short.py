"""A 0.1 s asyncio script: most of its life is `import asyncio`, whose memory
is made once and kept; the 50 calls after it keep nothing."""
import asyncio


async def handle(i):
    for _ in range(3):
        await asyncio.sleep(0)
    return bytearray(500)


async def main():
    for i in range(50):
        await handle(i)


asyncio.run(main())
