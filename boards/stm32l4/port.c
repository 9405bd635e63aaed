/* Runs once (startup) or per byte (the port): optimised for size; the board flags give -O2 for the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* Port for STM32L4 parts, register level (no HAL): nucleo_l476rg (STM32L476RG). Written from RM0351 (STM32L47x/48x
 * reference manual, rev 9):
 *   6.4  RCC registers        CR, CFGR, PLLCFGR, AHB2ENR, APB1ENR1
 *   3.7  FLASH registers      ACR.LATENCY (wait states per HCLK and voltage range, table 11)
 *   8.5  GPIO registers       MODER, PUPDR, AFRL
 *   40.8 USART registers      CR1, CR3, BRR, ISR, RDR, TDR (a newer USART than the F4's: other offsets)
 * The link is USART2 on PA2 (TX) / PA3 (RX), alternate function 7 (datasheet DS10198, table 17): on a Nucleo-64
 * board, the ST-LINK's virtual COM port. 115200 baud, 8N1, polled. QEMU has no STM32L4 machine: this port is built
 * and checked in CI (vector table, sizes), not run there; the F4 port's twin runs under QEMU.
 *
 * Clock: HSI16 -> PLL -> 80 MHz SYSCLK (the L476's maximum, voltage range 1, the reset default), APB1 = APB2 =
 * 80 MHz. Every wait is bounded: if HSI16 does not start, the flash does not take the wait states, or the PLL does
 * not lock or is not selected, the part stays on the 4 MHz MSI it boots on, and the UART's divisor is computed
 * from the clock the RCC reports, so the link works either way. */
#include "onward/port.h"
#include "../cortex-m/systick.h"
#include "../stm32/rcc.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC 0x40021000u
#define RCC_CR       REG(RCC + 0x00)
#define RCC_CFGR     REG(RCC + 0x08)
#define RCC_PLLCFGR  REG(RCC + 0x0C)
#define RCC_AHB2ENR  REG(RCC + 0x4C)
#define RCC_APB1ENR1 REG(RCC + 0x58)
#define CR_HSION  (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_PLLON  (1u << 24)
#define CR_PLLRDY (1u << 25)
#define AHB2ENR_GPIOAEN (1u << 0)
#define APB1ENR1_USART2EN (1u << 17)

#define FLASH_ACR REG(0x40022000u)
#define ACR_LATENCY_MASK 7u
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN   (1u << 9)
#define ACR_DCEN   (1u << 10)

#define GPIOA 0x48000000u
#define GPIOA_MODER REG(GPIOA + 0x00)
#define GPIOA_PUPDR REG(GPIOA + 0x0C)
#define GPIOA_AFRL  REG(GPIOA + 0x20)

#define USART2 0x40004400u
#define USART_CR1 REG(USART2 + 0x00)
#define USART_CR3 REG(USART2 + 0x08)
#define USART_BRR REG(USART2 + 0x0C)
#define USART_ISR REG(USART2 + 0x1C)
#define USART_RDR REG(USART2 + 0x24)
#define USART_TDR REG(USART2 + 0x28)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR3_OVRDIS (1u << 12)
#define ISR_RXNE (1u << 5)
#define ISR_TXE  (1u << 7)

#define MSI_HZ 4000000u   /* MSI range 6, the reset value; never changed here */
#define HSI16_HZ 16000000u
#define BAUD 115200u

/* PLL: HSI16 / M = 16 MHz VCO input (4-16 MHz), x N = 160 MHz VCO (64-344 MHz), / R = 80 MHz on PLLCLK. */
#define PLL_SRC_HSI16 2u
#define PLL_M 1u
#define PLL_N 10u
#define PLL_R 2u
#define PLLCFGR_PLLREN (1u << 24)
#define FLASH_WAIT_STATES 4u /* RM0351 table 11: 64 < HCLK <= 80 MHz in range 1 */
#define SW_HSI16 1u
#define SW_PLL 3u

static void clock_init(void)
{
    RCC_CR |= CR_HSION;
    if (!stm32_wait_for(&RCC_CR, CR_HSIRDY, CR_HSIRDY)) return;
    /* wait states first: running faster than the flash allows reads wrong instructions */
    FLASH_ACR = FLASH_WAIT_STATES | ACR_PRFTEN | ACR_ICEN | ACR_DCEN;
    if ((FLASH_ACR & ACR_LATENCY_MASK) != FLASH_WAIT_STATES) return;
    RCC_PLLCFGR = PLL_SRC_HSI16 | ((PLL_M - 1u) << 4) | (PLL_N << 8) | PLLCFGR_PLLREN | (((PLL_R / 2u) - 1u) << 25);
    RCC_CR |= CR_PLLON;
    if (!stm32_wait_for(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) return;
    RCC_CFGR = (RCC_CFGR & ~3u) | SW_PLL; /* AHB, APB1, APB2 undivided: 80 MHz is within every bus's limit */
    (void)stm32_wait_for(&RCC_CFGR, 3u << 2, SW_PLL << 2);
}

/* APB1's clock as the RCC reports it (CFGR.SWS, PLLCFGR, CFGR.HPRE/PPRE1), whatever clock_init achieved. */
static uint32_t pclk1_hz(void)
{
    uint32_t cfgr = RCC_CFGR, sws = (cfgr >> 2) & 3u, sysclk = MSI_HZ;
    if (sws == SW_HSI16) {
        sysclk = HSI16_HZ;
    } else if (sws == SW_PLL) { /* HSI16 is the PLL's only source configured here */
        uint32_t pll = RCC_PLLCFGR;
        uint32_t m = ((pll >> 4) & 7u) + 1u, n = (pll >> 8) & 0x7Fu, r = (((pll >> 25) & 3u) + 1u) * 2u;
        sysclk = HSI16_HZ / m * n / r;
    }
    uint32_t hpre = (cfgr >> 4) & 0xFu, ppre1 = (cfgr >> 8) & 7u;
    return stm32_pclk(stm32_hclk(sysclk, hpre), ppre1);
}

void onw_port_init(void)
{
    clock_init();
    RCC_AHB2ENR |= AHB2ENR_GPIOAEN;
    RCC_APB1ENR1 |= APB1ENR1_USART2EN; /* its kernel clock is PCLK1: CCIPR.USART2SEL's reset value */
    (void)RCC_APB1ENR1; /* a clock enable takes effect after a bus cycle: read back before touching the peripheral */
    /* PA2, PA3: alternate function 7 (USART2); a pull-up on RX keeps the line idle-high with no cable */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (7u << 8) | (7u << 12);
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (2u << 4) | (2u << 6);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0xFu << 4)) | (1u << 6);
    /* 16x oversampling: BRR = f_PCLK1 / baud, rounded */
    USART_BRR = (pclk1_hz() + BAUD / 2u) / BAUD;
    /* no overrun flag: a byte lost while the firmware computed is caught by the protocol's CRC (an error frame),
     * and reception goes on without having to clear ORE */
    USART_CR3 = CR3_OVRDIS;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE;
    systick_start();
}

#ifndef ONW_TRANSPORT_SEMIHOST
int onw_port_getc(void)
{
    while (!(USART_ISR & ISR_RXNE)) {
    }
    return (int)(USART_RDR & 0xFFu);
}

void onw_port_putc(uint8_t byte)
{
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = byte;
}

void onw_port_flush(void) {}
#endif
